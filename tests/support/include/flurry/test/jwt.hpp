#pragma once
// RS256 JSON Web Tokens for tests of GitHub App authentication: a key pair
// to sign with, and the check a forge makes of a token it is given.
#include <optional>
#include <string>

namespace flurry::test {

struct KeyPair {
  std::string private_pem;  // PKCS#8
  std::string public_pem;   // SubjectPublicKeyInfo
};

// A fresh 2048-bit RSA key pair; throws std::runtime_error if OpenSSL fails.
KeyPair new_rsa_key_pair();

// The claims (JSON text) of `jwt` when it is an RS256 token whose signature
// `public_pem` verifies; nullopt otherwise.
std::optional<std::string> verified_jwt_claims(const std::string& jwt, const std::string& public_pem);

// base64url without padding, decoded; nullopt for anything else.
std::optional<std::string> unbase64url(std::string s);

}  // namespace flurry::test
