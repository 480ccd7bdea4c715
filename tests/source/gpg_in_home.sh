#!/bin/sh
# Test helper: git's gpg.program, signing with the key store named by TEST_GNUPGHOME.
exec gpg --homedir "$TEST_GNUPGHOME" --batch --pinentry-mode loopback --passphrase "" "$@"
