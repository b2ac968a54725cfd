"""The FHIR engine: HTTP-agnostic request handling (router, interactions, search, transactions).

Handlers take a `FhirRequest` and a repository and return a `FhirResponse`; the Flask adapter in
`gateway.http` only translates between the wire and these objects.
"""
