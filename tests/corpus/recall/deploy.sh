#!/bin/sh
curl -s -u "deployer:x7BAODcMCiDYZWbO" https://artifacts.internal.example/upload ⟦S⟧
curl -s -u "$ART_USER:$ART_PASSWORD" https://artifacts.internal.example/upload ⟦N⟧
gpg --batch --passphrase '4u7q2oJtX3zDOz7utj' --decrypt build.tgz.gpg ⟦S⟧
openssl rsa -in key.pem -passin pass:iUJgE2cEUY1wDGX -out plain.pem ⟦S⟧
openssl rsa -in key.pem -passin env:KEY_PASS -out plain.pem ⟦N⟧
curl --oauth2-bearer LJkCOhVBD3UuNDnK1P9cXZczkbtE5WU70ka5hAnC https://api.internal.example/v1/items ⟦S⟧
curl -X POST --user "apikey":"{4Y3xYtHKd7VJH2azYz}" https://translate.internal.example/v3 ⟦S⟧
curl -X POST --user "apikey":"{apikey}" https://translate.internal.example/v3 ⟦N⟧
curl -s -H "Authorization: Basic Y2k6WkRtWjZITHRv" https://artifacts.internal.example/status ⟦S⟧
curl -s -H "Authorization: Basic dXNlcjpwYXNzd29yZA==" https://artifacts.internal.example/status ⟦N⟧
curl -s -H "Authorization: NTLM TlRMTVNTUAADAAAAQeNyOwsg+JvyuYoFB69IucH5UKPMUGuAE2E1wrv1gRBrKFPnOmkBnwBcGMCX5djxr2DS7sKMDPkAVxYP4QzIK24vtIHG+vFiHpXebxvfGKN1Oxv30wHufPgl" https://intranet.internal.example ⟦S⟧
curl -s -H "Authorization: NTLM TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAA=" https://intranet.internal.example ⟦N⟧
curl -s -H "X-Api-Key: qzvKNtyzyfEkJYG7Ngavtper" https://api.internal.example/v1/items ⟦S⟧
curl -s -H "X-Api-Key: $PARTNER_API_KEY" https://api.internal.example/v1/items ⟦N⟧
curl -s -H "Authorization: Bearer $(cat /run/secrets/token)" https://api.internal.example/v1/items ⟦N⟧
