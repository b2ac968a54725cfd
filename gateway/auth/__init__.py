"""SMART on FHIR: the authorization server (App Launch 2.2, Backend Services) and the resource
server's checks. `scopes` and `roles` are plain data; the rest works on the store's tables."""
