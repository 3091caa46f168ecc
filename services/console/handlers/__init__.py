"""The console's use cases: accounts (sign-in, sessions, password links), people (workspaces,
invitations, "forgot password"), keys, single sign-on, housekeeping."""
