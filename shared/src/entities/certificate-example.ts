// A published example for `GET /schemas/certificates` and `/schemas/ca_certificates` (Kong's
// `example`), so a client building a body from the schema alone gets one the checks accept. Public,
// throwaway and named for `example.portico.invalid` (RFC 6761 §6.4): never serve it.
export const EXAMPLE_CERT = `-----BEGIN CERTIFICATE-----
MIIBvjCCAWWgAwIBAgIUQD9qJUcCoSYiJbHAF+tuH0zNVdcwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXZXhhbXBsZS5wb3J0aWNvLmludmFsaWQwIBcNMjYxMTMwMTcz
MDI0WhgPMjEyNjExMDYxNzMwMjRaMCIxIDAeBgNVBAMMF2V4YW1wbGUucG9ydGlj
by5pbnZhbGlkMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEdcSrhbFBGkPJP21V
CQ+hbPHc5C+yvnsUiBXAkcOZNCV1cEUkXhd69EIeL+/k1+mSUheXNxVEy0wXrq/r
ZPjw9KN3MHUwHQYDVR0OBBYEFBeXT3IgV+lXh/6NaV3AChlXuDLOMB8GA1UdIwQY
MBaAFBeXT3IgV+lXh/6NaV3AChlXuDLOMA8GA1UdEwEB/wQFMAMBAf8wIgYDVR0R
BBswGYIXZXhhbXBsZS5wb3J0aWNvLmludmFsaWQwCgYIKoZIzj0EAwIDRwAwRAIg
MBkwdfrasrF3A5pUiHlTCDVEha3HyKlcOm8CD6piN3kCIDLfobrf7rNgPESVH89g
0F+QKxs2cBZlwOErjFbdZuc1
-----END CERTIFICATE-----
`;
export const EXAMPLE_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmSSuaA/cleN/uxdc
L6hmM315wifT+04yiGkOCTzWgMehRANCAAR1xKuFsUEaQ8k/bVUJD6Fs8dzkL7K+
exSIFcCRw5k0JXVwRSReF3r0Qh4v7+TX6ZJSF5c3FUTLTBeur+tk+PD0
-----END PRIVATE KEY-----
`;
export const EXAMPLE_UUID = '00000000-0000-4000-8000-000000000000';
