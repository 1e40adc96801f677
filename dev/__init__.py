"""Development helpers: ``herald run``, its mail catcher and its embedded Redis."""
