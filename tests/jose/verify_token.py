"""Verifies a stepgate access token with PyJWT, an independent JOSE implementation,
fetching the public key from the server's JWKS. Prints the claims as JSON; exits
non-zero if the token does not verify."""

import json
import sys

import jwt

jwks_url, token, issuer = sys.argv[1:4]
signing_key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
claims = jwt.decode(
    token,
    signing_key.key,
    algorithms=["EdDSA"],
    issuer=issuer,
    options={"require": ["iss", "sub", "iat", "exp"], "verify_aud": False},
)
print(json.dumps(claims))
