package admin

import "errors"

// ErrNoAuthorizer is what DescribeACLs returns, wrapped, when the cluster
// has no authorizer (SECURITY_DISABLED): every client may do everything,
// and there are no ACLs to check.
var ErrNoAuthorizer = errors.New("admin: the cluster has no authorizer")
