// Package kafkaauth turns a connection-security configuration into kgo
// options: TLS (system roots by default, a CA file, a client certificate
// for mTLS, a server name) and SASL through franz-go's pkg/sasl packages
// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER, AWS_MSK_IAM). No
// mechanism is implemented here.
//
//	opts, err := kafkaauth.Config{
//		TLS:  kafkaauth.TLS{Enable: true},
//		SASL: kafkaauth.SASL{Mechanism: "SCRAM-SHA-512", Username: "orders", PasswordFile: "/run/secrets/kafka"},
//	}.Opts()
//
// RegisterFlags declares the matching command-line flags (--tls,
// --sasl-mechanism, ...), optionally under a prefix (--source-tls) for
// programs that talk to two clusters; package app reads each of them also
// from the environment variable <PROGRAM>_<FLAG>.
//
// Secrets (passwords, tokens, AWS keys) are read when a connection
// authenticates, so a rotated file is picked up by the next connection,
// and are never printed: Secret formats as "[redacted]", and no error of
// this package holds one.
//
// A failed authentication (a wrong password, an unknown user, a mechanism
// the broker does not enable, a certificate the broker or the client
// refuses) is permanent: IsAuthFailure tells it from a broker that is not
// up yet, and Check turns what a client saw into an *AuthError naming
// the mechanism and the broker, so that a program stops at once instead
// of retrying until its connect timeout.
package kafkaauth
