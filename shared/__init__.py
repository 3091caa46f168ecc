"""What every closeloop service needs: events, messaging, database, auth, errors, observability."""
