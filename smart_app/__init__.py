"""The responder SMART-on-FHIR app. Empty until the SMART issue."""
