"""Errors of the auth service. Codes are stable (docs/errors.md).

InvalidInput
├── InvalidUsername          username_invalid
├── InvalidPassword          password_invalid
├── InvalidDisplayName       display_name_invalid
├── InvalidAvatar            avatar_invalid        (not a PNG, JPEG or WebP image that decodes)
└── AvatarTooLarge           avatar_too_large      (more pixels than `AVATAR_MAX_PIXELS`: a decompression bomb)
Unauthenticated
├── InvalidCredentials       invalid_credentials   (unknown user and bad password alike)
├── InvalidRefreshToken      invalid_refresh_token
├── RefreshTokenReused       refresh_token_reused  (the session is revoked)
└── SessionRevoked           session_revoked
Forbidden
└── WrongPassword            wrong_password        (a signed-in user confirming with a wrong password)
NotFound
└── SessionNotFound          session_not_found     (not one of the caller's sessions)
Conflict
└── UsernameTaken            username_taken
RateLimited
└── TooManyLoginAttempts     too_many_login_attempts
"""

from __future__ import annotations

from parlour.common.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unauthenticated


class InvalidUsername(InvalidInput):
    code = "username_invalid"
    default_message = "Usernames are 3 to 32 characters of a-z, 0-9, '_', '.' and '-'."


class InvalidPassword(InvalidInput):
    code = "password_invalid"
    default_message = "Passwords are 8 to 128 characters and not all the same character."


class InvalidDisplayName(InvalidInput):
    code = "display_name_invalid"
    default_message = "Display names are 1 to 64 printable characters."


class InvalidAvatar(InvalidInput):
    code = "avatar_invalid"
    default_message = "A picture is a PNG, JPEG or WebP image of at most 2 MB."


class AvatarTooLarge(InvalidInput):
    code = "avatar_too_large"
    default_message = "This picture has too many pixels: at most 25 megapixels."


class UsernameTaken(Conflict):
    code = "username_taken"
    default_message = "This username is taken: choose another."


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    default_message = "Unknown username or wrong password."


class InvalidRefreshToken(Unauthenticated):
    code = "invalid_refresh_token"
    default_message = "The refresh token is not valid or has expired: log in again."


class RefreshTokenReused(Unauthenticated):
    code = "refresh_token_reused"
    default_message = "This refresh token was already used, so the session has been revoked: log in again."


class SessionRevoked(Unauthenticated):
    code = "session_revoked"
    default_message = "This session has ended: log in again."


class WrongPassword(Forbidden):
    code = "wrong_password"
    default_message = "The password is wrong."


class SessionNotFound(NotFound):
    code = "session_not_found"
    default_message = "You have no such session."


class TooManyLoginAttempts(RateLimited):
    code = "too_many_login_attempts"
    default_message = "Too many login attempts: wait before trying again."
