"""The console's pure rules: passwords, session lifetimes, sign-in throttling, OpenID Connect checks."""
