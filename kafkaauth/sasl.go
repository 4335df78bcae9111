package kafkaauth

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/aws"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The AWS environment variables AWS_MSK_IAM reads, as the AWS SDKs do.
const (
	envAWSAccessKey    = "AWS_ACCESS_KEY_ID"
	envAWSSecretKey    = "AWS_SECRET_ACCESS_KEY"
	envAWSSessionToken = "AWS_SESSION_TOKEN"
)

// validate checks that the mechanism is known and has what it needs.
// Errors name the flag (under prefix) at fault.
func (s SASL) validate(prefix string) error {
	m := s.mechanism()
	userFlag, passFlag, fileFlag := "--"+prefix+"sasl-username", "--"+prefix+"sasl-password", "--"+prefix+"sasl-password-file"
	switch m {
	case "":
		for _, f := range []struct {
			name string
			set  bool
		}{{"sasl-username", s.Username != ""}, {"sasl-password", s.Password != ""},
			{"sasl-password-file", s.PasswordFile != ""}, {"sasl-token-file", s.TokenFile != ""}} {
			if f.set {
				return flagErrorf(prefix+f.name, "is set but --%ssasl-mechanism is not", prefix)
			}
		}
	case Plain, ScramSHA256, ScramSHA512:
		switch {
		case s.Username == "":
			return flagErrorf(prefix+"sasl-username", "is required with SASL mechanism %s", m)
		case s.Password != "" && s.PasswordFile != "":
			return flagErrorf(prefix+"sasl-password-file", "and %s are both set: give one", passFlag)
		case s.Password == "" && s.PasswordFile == "":
			return flagErrorf(prefix+"sasl-password", "(or %s) is required with SASL mechanism %s", fileFlag, m)
		case s.TokenFile != "":
			return flagErrorf(prefix+"sasl-token-file", "is for OAUTHBEARER, not %s", m)
		}
		if s.PasswordFile != "" {
			if _, err := readSecretFile(s.PasswordFile); err != nil {
				return flagErrorf(prefix+"sasl-password-file", "%s", err)
			}
		}
	case OAuthBearer:
		switch {
		case s.TokenFile == "":
			return flagErrorf(prefix+"sasl-token-file", "is required with SASL mechanism %s", m)
		case s.Username != "" || s.Password != "" || s.PasswordFile != "":
			return flagErrorf(prefix+"sasl-token-file", "OAUTHBEARER takes a token, not %s, %s or %s", userFlag, passFlag, fileFlag)
		}
		if _, err := readSecretFile(s.TokenFile); err != nil {
			return flagErrorf(prefix+"sasl-token-file", "%s", err)
		}
	case AWSMSKIAM:
		if s.Username != "" || s.Password != "" || s.PasswordFile != "" || s.TokenFile != "" {
			return flagErrorf(prefix+"sasl-mechanism", "AWS_MSK_IAM takes its credentials from %s and %s, not from %s, %s, %s or --%ssasl-token-file",
				envAWSAccessKey, envAWSSecretKey, userFlag, passFlag, fileFlag, prefix)
		}
		if _, err := awsAuth(); err != nil {
			return flagErrorf(prefix+"sasl-mechanism", "%s", err)
		}
	default:
		return flagErrorf(prefix+"sasl-mechanism", "unknown SASL mechanism %q: want %s", s.Mechanism, strings.Join(Mechanisms, ", "))
	}
	return nil
}

// kgoMechanism returns the franz-go mechanism of a validated s. Its
// secrets are read on each authentication: a rotated file is picked up
// by the next connection.
func (s SASL) kgoMechanism() sasl.Mechanism {
	switch m := s.mechanism(); m {
	case Plain:
		return plain.Plain(func(context.Context) (plain.Auth, error) {
			pass, err := s.password()
			return plain.Auth{User: s.Username, Pass: pass}, err
		})
	case ScramSHA256, ScramSHA512:
		fn := func(context.Context) (scram.Auth, error) {
			pass, err := s.password()
			return scram.Auth{User: s.Username, Pass: pass}, err
		}
		if m == ScramSHA256 {
			return scram.Sha256(fn)
		}
		return scram.Sha512(fn)
	case OAuthBearer:
		return oauth.Oauth(func(context.Context) (oauth.Auth, error) {
			token, err := readSecretFile(s.TokenFile)
			if err != nil {
				return oauth.Auth{}, fmt.Errorf("reading the OAUTHBEARER token: %w", err)
			}
			return oauth.Auth{Token: token}, nil
		})
	}
	return aws.ManagedStreamingIAM(func(context.Context) (aws.Auth, error) { return awsAuth() })
}

// password returns the password, from PasswordFile if set.
func (s SASL) password() (string, error) {
	if s.PasswordFile == "" {
		return string(s.Password), nil
	}
	p, err := readSecretFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("reading the %s password: %w", s.mechanism(), err)
	}
	return p, nil
}

// awsAuth reads the AWS credentials from the environment, as the AWS SDKs'
// first provider does.
func awsAuth() (aws.Auth, error) {
	a := aws.Auth{
		AccessKey:    os.Getenv(envAWSAccessKey),
		SecretKey:    os.Getenv(envAWSSecretKey),
		SessionToken: os.Getenv(envAWSSessionToken),
		UserAgent:    "exactly",
	}
	if a.AccessKey == "" || a.SecretKey == "" {
		return a, fmt.Errorf("AWS_MSK_IAM needs the environment variables %s and %s (and %s for temporary credentials)",
			envAWSAccessKey, envAWSSecretKey, envAWSSessionToken)
	}
	return a, nil
}
