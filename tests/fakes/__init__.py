"""In-memory stand-ins for the parts of nascli that touch a database, for unit tests."""
