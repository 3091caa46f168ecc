"""Request and response bodies of the follow-up API, one module per part."""
