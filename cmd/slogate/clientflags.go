package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slogate/slogate/client"
)

// Exit codes of the commands that ask a server (gate, run), fixed by the
// design so that pipelines can branch on them.
const (
	exitPassed     = 0 // gate open; run passed
	exitFailed     = 1 // the hypotheses did not hold or recover
	exitGateClosed = 2
	exitAborted    = 3 // the server aborted the run
	exitUnknown    = 4 // unknown gate, or any error
)

// Environment variables of the client flags. They are read here rather
// than through the service configuration: these commands have no config
// file, and a token must never show up as a flag default in --help.
const (
	envServer            = "SLOGATE_SERVER"
	envToken             = "SLOGATE_TOKEN"
	envTokenFile         = "SLOGATE_TOKEN_FILE"
	envBasicAuthUser     = "SLOGATE_BASIC_AUTH_USER"
	envBasicAuthPassFile = "SLOGATE_BASIC_AUTH_PASSWORD_FILE"
)

// clientFlags are the flags of the commands that talk to `slogate serve`.
type clientFlags struct {
	fs            *pflag.FlagSet
	server        string
	token         string
	tokenFile     string
	basicUser     string
	basicPassFile string
	timeout       time.Duration
}

func (f *clientFlags) register(fs *pflag.FlagSet) {
	f.fs = fs
	fs.StringVar(&f.server, "server", client.DefaultServer, "base URL of slogate serve (env "+envServer+")")
	fs.StringVar(&f.token, "token", "", "API token sent to the server, which requires one for starting, finishing and aborting runs when web.api-token-file is set; sent as a bearer token, or in the "+client.TokenHeader+" header with basic auth (env "+envToken+")")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the API token; safer than --token, which other users can see in ps (env "+envTokenFile+")")
	fs.StringVar(&f.basicUser, "basic-auth-user", "", "user name for a server whose web.config-file requires basic auth; needs --basic-auth-password-file (env "+envBasicAuthUser+")")
	fs.StringVar(&f.basicPassFile, "basic-auth-password-file", "", "file holding the basic-auth password on one line; there is no password flag, so that it never shows in ps (env "+envBasicAuthPassFile+")")
	fs.DurationVar(&f.timeout, "timeout", client.DefaultTimeout, "time limit of each request to the server")
}

// newClient builds the client from the flags, falling back to the
// environment for each flag that was not given.
func (f *clientFlags) newClient() (*client.Client, error) {
	server := f.server
	if !f.fs.Changed("server") {
		if v := os.Getenv(envServer); v != "" {
			server = v
		}
	}
	if f.timeout <= 0 {
		return nil, fmt.Errorf("--timeout %s: must be positive", f.timeout)
	}
	token, err := f.resolveToken()
	if err != nil {
		return nil, err
	}
	basic, err := f.resolveBasicAuth()
	if err != nil {
		return nil, err
	}
	c, err := client.New(client.Options{Server: server, Token: token, BasicAuth: basic, Timeout: f.timeout})
	if err != nil {
		return nil, fmt.Errorf("--server: %w", err)
	}
	return c, nil
}

// resolveBasicAuth reads the basic-auth credentials, each flag falling
// back to its environment variable. The password comes from a file only:
// a flag would show it in ps and in shell histories.
func (f *clientFlags) resolveBasicAuth() (*client.BasicAuth, error) {
	user, userFrom := f.basicUser, "--basic-auth-user"
	if !f.fs.Changed("basic-auth-user") {
		user, userFrom = os.Getenv(envBasicAuthUser), envBasicAuthUser
	}
	file, fileFrom := f.basicPassFile, "--basic-auth-password-file"
	if !f.fs.Changed("basic-auth-password-file") {
		file, fileFrom = os.Getenv(envBasicAuthPassFile), envBasicAuthPassFile
	}
	switch {
	case user == "" && file == "":
		return nil, nil
	case file == "":
		return nil, fmt.Errorf("%s %s: no password; set --basic-auth-password-file (or %s)", userFrom, user, envBasicAuthPassFile)
	case user == "":
		return nil, fmt.Errorf("%s %s: no user; set --basic-auth-user (or %s)", fileFrom, file, envBasicAuthUser)
	case strings.ContainsAny(user, ":\r\n"):
		return nil, fmt.Errorf("%s: a user name cannot contain ':' or line breaks", userFrom)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fileFrom, err)
	}
	// Surrounding white space is dropped, as for Prometheus's password_file.
	pass := strings.TrimSpace(string(b))
	switch {
	case pass == "":
		return nil, fmt.Errorf("%s: %s is empty", fileFrom, file)
	case strings.ContainsAny(pass, "\r\n"):
		return nil, fmt.Errorf("%s: %s has more than one line; the password must be its only line", fileFrom, file)
	}
	return &client.BasicAuth{Username: user, Password: pass}, nil
}

// resolveToken applies flags over environment: a token given on the
// command line hides both variables, so that an exported SLOGATE_TOKEN_FILE
// does not clash with a --token typed for one call.
func (f *clientFlags) resolveToken() (string, error) {
	token, file := f.token, f.tokenFile
	tokenFrom, fileFrom := "--token", "--token-file"
	if !f.fs.Changed("token") && !f.fs.Changed("token-file") {
		token, file = os.Getenv(envToken), os.Getenv(envTokenFile)
		tokenFrom, fileFrom = envToken, envTokenFile
	}
	switch {
	case token != "" && file != "":
		return "", fmt.Errorf("%s and %s both set; use one", tokenFrom, fileFrom)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", fileFrom, err)
		}
		t := strings.TrimSpace(string(b))
		if t == "" {
			return "", fmt.Errorf("%s: %s is empty", fileFrom, file)
		}
		return t, nil
	}
	return token, nil
}

// usageError makes bad flags and arguments exit 4 like any other error of
// these commands, instead of cobra's 1, which would read as "failed".
func usageError(_ *cobra.Command, err error) error {
	return exitWith(exitUnknown, err)
}
