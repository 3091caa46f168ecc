"""The console's own refusals (the rest are ``shared.errors``)."""

from __future__ import annotations

from shared.errors import CloseloopError

SIGN_IN_REFUSED = "The email address or the password is not right."


class SignInRefused(CloseloopError):
    """401 with one message for every reason, so that nobody learns which addresses have accounts."""

    status, code, title = 401, "sign-in-refused", "Sign-in refused"

    def __init__(self, detail: str = SIGN_IN_REFUSED) -> None:
        super().__init__(detail, field="email")


class TooManyAttempts(CloseloopError):
    """429: too many failed sign-ins for the account or from the address; ``Retry-After`` says when."""

    status, code, title = 429, "too-many-attempts", "Too many attempts"

    def __init__(self, retry_after_s: int) -> None:
        minutes = max(1, round(retry_after_s / 60))
        super().__init__(
            f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes != 1 else ''}, or reset "
            "your password with 'Forgot your password?'.",
            field="email",
            headers={"Retry-After": str(retry_after_s)},
        )
        self.retry_after_s = retry_after_s
