"""The REST API: app factory, one blueprint per resource, schemas, auth and errors."""
