"""The responder SMART-on-FHIR app: its own Flask application (`smart_app.app.create_app`), a
confidential SMART client that talks to the gateway only over HTTP."""
