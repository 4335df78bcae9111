package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACLReport is the doctor's acls check: which of the ACLs an instance
// needs (RequiredACLs with RoleInstance) the principal lacks.
type ACLReport struct {
	// Principal is the principal checked ("User:alice"), empty when
	// unknown.
	Principal string `json:"principal,omitempty"`
	// Checked reports whether the ACLs were compared; Note says why not,
	// or what was found.
	Checked bool   `json:"checked"`
	Note    string `json:"note"`
	// Required is the set the principal needs.
	Required []ACL `json:"required"`
	// Missing are the entries of Required the principal lacks; each is
	// also a critical finding.
	Missing []ACL `json:"missing"`
}

// DescribeACLs returns every ACL binding of the cluster. It returns an
// error wrapping ErrNoAuthorizer when the cluster has no authorizer
// (SECURITY_DISABLED), and the broker's error (CLUSTER_AUTHORIZATION_FAILED
// without DESCRIBE on the CLUSTER) otherwise.
func DescribeACLs(ctx context.Context, cl *kgo.Client) ([]kadm.DescribedACL, error) {
	b := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).
		Allow().AllowHosts().Deny().DenyHosts().Operations()
	rs, err := kadm.NewClient(cl).DescribeACLs(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("describing ACLs: %w", err)
	}
	var out []kadm.DescribedACL
	seen := map[kadm.DescribedACL]bool{}
	for _, r := range rs {
		if errors.Is(r.Err, kerr.SecurityDisabled) {
			return nil, fmt.Errorf("%w (%w)", ErrNoAuthorizer, r.Err)
		}
		if r.Err != nil {
			return nil, fmt.Errorf("describing ACLs: %w", r.Err)
		}
		for _, d := range r.Described {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out, nil
}

// MissingACLs returns the entries of want that bindings (DescribeACLs)
// do not grant principal, in want's order. It follows Kafka's
// authorizer: a DENY that matches wins; an ALLOW matches by principal (or
// User:*), resource type, name (literal, the wildcard "*", or a prefix)
// and operation (or ALL, or an operation that implies the one wanted).
// Hosts are not compared: a binding for any host counts. A wanted PREFIXED
// entry is granted only by a binding that covers every name with that
// prefix (a shorter or equal prefix, or "*").
func MissingACLs(bindings []kadm.DescribedACL, principal string, want []ACL) []ACL {
	var out []ACL
	for _, a := range want {
		if !allowed(bindings, principal, a) {
			out = append(out, a)
		}
	}
	return out
}

func allowed(bindings []kadm.DescribedACL, principal string, want ACL) bool {
	ok := false
	for _, b := range bindings {
		if (b.Principal != principal && b.Principal != "User:*") || b.Type != want.Resource || !covers(b, want) {
			continue
		}
		switch b.Permission {
		case kmsg.ACLPermissionTypeDeny:
			if b.Operation == want.Operation || b.Operation == kmsg.ACLOperationAll {
				return false
			}
		case kmsg.ACLPermissionTypeAllow:
			ok = ok || implies(b.Operation, want.Operation)
		default: // unknown or any: not a binding
		}
	}
	return ok
}

// covers reports whether binding b's resource pattern includes every
// name want stands for.
func covers(b kadm.DescribedACL, want ACL) bool {
	switch b.Pattern {
	case kmsg.ACLResourcePatternTypeLiteral:
		return b.Name == "*" || (want.Pattern == kmsg.ACLResourcePatternTypeLiteral && b.Name == want.Name)
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(want.Name, b.Name)
	}
	return false
}

// implies reports whether an ALLOW of have grants want (KIP-253: READ,
// WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies
// DESCRIBE_CONFIGS; ALL implies everything).
func implies(have, want kmsg.ACLOperation) bool {
	switch {
	case have == want || have == kmsg.ACLOperationAll:
		return true
	case want == kmsg.ACLOperationDescribe:
		return have == kmsg.ACLOperationRead || have == kmsg.ACLOperationWrite || have == kmsg.ACLOperationDelete || have == kmsg.ACLOperationAlter
	case want == kmsg.ACLOperationDescribeConfigs:
		return have == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// acls is the doctor's acls check for the principal of DoctorOptions. A
// missing ACL is critical: the instance stops, or never starts, without
// it.
func (d *doctor) acls(ctx context.Context) {
	p := d.p
	if len(d.o.ACLGroups) > 0 {
		p.Stages = slices.DeleteFunc(slices.Clone(p.Stages), func(s Stage) bool { return !slices.Contains(d.o.ACLGroups, s.Group) })
	}
	want, _ := RequiredACLs(p, RoleInstance, ACLOptions{}) // the role is known
	r := &ACLReport{Principal: d.o.ACLPrincipal, Required: want, Missing: []ACL{}}
	d.r.ACLs = r
	if r.Principal == "" {
		r.Note = "not checked: the principal is not known (no SASL user: mTLS, OAUTHBEARER or AWS_MSK_IAM); name it to check it"
		return
	}
	bindings, err := DescribeACLs(ctx, d.cl)
	switch {
	case errors.Is(err, ErrNoAuthorizer):
		r.Note = "no authorizer, skipped"
		return
	case err != nil:
		r.Note = "not checked: " + err.Error()
		d.r.add(Warning, CheckACLs, "cluster", "cannot describe the ACLs to check %s: %s; the doctor needs DESCRIBE on the CLUSTER for this check", r.Principal, err)
		return
	case len(bindings) == 0:
		// The doctor may describe ACLs, yet none exist: it is a superuser,
		// or the cluster authorizes everyone (kfake without ACLs,
		// allow.everyone.if.no.acl.found).
		r.Note = "no ACLs on the cluster (no authorizer, or every client is a superuser), skipped"
		return
	}
	r.Checked = true
	r.Missing = append(r.Missing, MissingACLs(bindings, r.Principal, want)...)
	if len(r.Missing) == len(want) && !hasBinding(bindings, r.Principal) {
		r.Note = fmt.Sprintf("%s has no ACL at all: a superuser needs none, any other principal needs all %d", r.Principal, len(want))
		d.r.add(Warning, CheckACLs, r.Principal, "%s", r.Note)
		return
	}
	r.Note = fmt.Sprintf("%d of %d required ACLs granted to %s", len(want)-len(r.Missing), len(want), r.Principal)
	for _, a := range r.Missing {
		d.r.add(Critical, CheckACLs, strings.ToLower(a.Resource.String())+" "+a.Name,
			"%s lacks ALLOW %s: an instance %s; grant it with %s", r.Principal, a, a.Why, a.Command(r.Principal))
	}
}

// hasBinding reports whether any binding names principal (or User:*).
func hasBinding(bindings []kadm.DescribedACL, principal string) bool {
	for _, b := range bindings {
		if b.Principal == principal || b.Principal == "User:*" {
			return true
		}
	}
	return false
}
