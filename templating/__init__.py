"""Template rendering, below both the API (which checks and previews templates, and checks a
send against its template when accepting it) and the workers (which render what they send):
:mod:`templating.engine` renders in a bounded sandbox, :mod:`templating.render` turns a message
into what its channel sends."""
