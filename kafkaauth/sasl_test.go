package kafkaauth

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSecretFilesAreReadOnEachAuthentication: the password and token
// files are read each time a connection authenticates, so that a rotated
// secret is used by the next connection without a restart.
func TestSecretFilesAreReadOnEachAuthentication(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "secret")
	for name, s := range map[string]SASL{
		"PLAIN":       {Mechanism: Plain, Username: "u", PasswordFile: file},
		"OAUTHBEARER": {Mechanism: OAuthBearer, TokenFile: file},
	} {
		t.Run(name, func(t *testing.T) {
			for _, v := range []string{"first-secret", "rotated-secret"} {
				require.NoError(t, os.WriteFile(file, []byte(v+"\n"), 0o600))
				_, first, err := s.kgoMechanism().Authenticate(context.Background(), "127.0.0.1:9092")
				require.NoError(t, err)
				require.Contains(t, string(first), v)
				require.NotContains(t, string(first), v+"\n")
			}
			require.NoError(t, os.Remove(file))
			_, _, err := s.kgoMechanism().Authenticate(context.Background(), "127.0.0.1:9092")
			require.ErrorContains(t, err, "no such file")
			require.NoError(t, os.WriteFile(file, nil, 0o600))
		})
	}
}

// TestAWSCredentialsFromTheEnvironment: AWS_MSK_IAM signs with the keys
// of the standard environment variables, read on each authentication.
func TestAWSCredentialsFromTheEnvironment(t *testing.T) {
	t.Setenv(envAWSAccessKey, "AKIDEXAMPLE")
	t.Setenv(envAWSSecretKey, "aws-secret-never-printed")
	s := SASL{Mechanism: "aws_msk_iam"}
	require.NoError(t, s.validate(""))
	_, first, err := s.kgoMechanism().Authenticate(context.Background(), "b-1.example.kafka.us-east-1.amazonaws.com:9098")
	require.NoError(t, err)
	require.Contains(t, string(first), "AKIDEXAMPLE")
	require.NotContains(t, string(first), "aws-secret-never-printed")
}
