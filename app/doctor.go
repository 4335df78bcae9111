package app

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/kafkaauth"
)

// doctorSetup is `doctor`.
func (k *kit) doctorSetup(fs *flagSet, _ string) Runner {
	brokers := fs.String("brokers", "", "comma-separated seed brokers (required)")
	pipeline := k.pipelineFlags(fs)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	var o admin.DoctorOptions
	fs.DurationVar(&o.TxnThreshold, "txn-threshold", 30*time.Second, "report transactions open longer than this")
	fs.Int64Var(&o.MaxLag, "max-lag", 100000, "waiting records of a running group that make a warning")
	timeout := fs.Duration("timeout", time.Minute, "give up after this long")
	principal := fs.String("acls-principal", "", "principal whose ACLs the acls check compares with what an instance needs (default: User:<--sasl-username> with PLAIN or SCRAM)")
	aclService := ""
	if len(k.services) > 1 {
		fs.StringVar(&aclService, "acls-service", "", "check only the ACLs an instance of this service needs: "+k.serviceNames()+" (default: every service)")
	}
	printACLs := fs.Bool("print-acls", false, "print the ACLs each role needs (instance, reset, topics, doctor) as a table and kafka-acls.sh commands for --acls-principal, and exit without connecting")
	sec := securityFlags(fs)
	return func(ctx context.Context, stdout io.Writer) error {
		if *principal == "" {
			*principal = saslPrincipal(sec.Config())
		}
		p, err := pipeline()
		if err != nil {
			return err
		}
		if aclService != "" {
			i := slices.IndexFunc(k.services, func(s Service) bool { return s.Name == aclService })
			if i < 0 {
				return fs.usagef("acls-service", "want %s, got %q", k.serviceNames(), aclService)
			}
			o.ACLGroups = []string{p.Stages[i].Group}
		}
		if *printACLs {
			return renderACLs(stdout, p.Pipeline, o.ACLGroups, *principal)
		}
		for name, bad := range map[string]bool{"txn-threshold": o.TxnThreshold <= 0, "max-lag": o.MaxLag <= 0, "timeout": *timeout <= 0} {
			if bad {
				return fs.usagef(name, "must be positive")
			}
		}
		cl, err := securedClient(fs, SplitBrokers(*brokers), sec)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		o.ConnectTimeout = min(15*time.Second, *timeout/2)
		if err := checkAuth(ctx, cl, sec, o.ConnectTimeout); err != nil {
			return fmt.Errorf("doctor: %w", err)
		}
		o.CreateHint = k.cfg.Name + " topics create"
		o.ACLPrincipal = *principal
		r, err := admin.Doctor(ctx, cl, p.Pipeline, o)
		if err != nil {
			return fmt.Errorf("doctor: %w", err)
		}
		if *asJSON {
			err = writeJSON(stdout, r)
		} else {
			err = renderDoctor(stdout, r)
		}
		if err != nil {
			return err
		}
		return doctorVerdict(r)
	}
}

// doctorVerdict maps the report's severity to an exit status: 0 OK, 4
// warnings, 5 critical.
func doctorVerdict(r *admin.Report) error { return Verdict(r.Findings) }

// Verdict is a doctor's result as a command's error: nil without
// warnings or critical findings, else an error whose ExitCode is
// ExitWarning (warnings only) or ExitCritical, counting them. A program's
// own doctor returns it after printing its report.
func Verdict(findings []admin.Finding) error {
	var crit, warn int
	for _, f := range findings {
		switch f.Severity {
		case admin.Critical:
			crit++
		case admin.Warning:
			warn++
		}
	}
	switch {
	case crit > 0:
		return &exitError{code: ExitCritical, err: fmt.Errorf("doctor: %d critical, %d warnings", crit, warn)}
	case warn > 0:
		return &exitError{code: ExitWarning, err: fmt.Errorf("doctor: %d warnings", warn)}
	}
	return nil
}

// renderDoctor prints the report as tables: findings first, then what the
// doctor saw. Partitions show as one line per topic plus the ones whose
// last stable offset lags; --json has every partition.
func renderDoctor(w io.Writer, r *admin.Report) error {
	fmt.Fprintf(w, "doctor: %s at %s\n", strings.ToUpper(r.Severity.String()), r.Time.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	section := func(title, header string) {
		fmt.Fprintf(tw, "\n%s\n%s\n", title, header)
	}
	if len(r.Findings) > 0 {
		section("FINDINGS", "SEVERITY\tCHECK\tSUBJECT\tMESSAGE")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.Check, f.Subject, f.Message)
		}
	}
	if len(r.Brokers) > 0 {
		section("BROKERS", "ID\tADDRESS\tRACK\tVERSION\tSTATUS")
		for _, b := range r.Brokers {
			status := "ok"
			if !b.Reachable {
				status = "unreachable: " + b.Error
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", b.ID, b.Address, b.Rack, b.Version, status)
		}
	}
	renderTopicSummary(tw, r.Partitions)
	renderGroups(tw, r.Groups)
	if a := r.ACLs; a != nil {
		fmt.Fprintf(tw, "\nACLS: %s\n", a.Note)
	}
	if len(r.Transactions) > 0 {
		section("OPEN TRANSACTIONS", "TRANSACTIONAL ID\tPRODUCER\tSTATE\tAGE\tTIMEOUT\tHOLDS BACK")
		for _, t := range r.Transactions {
			fmt.Fprintf(tw, "%s\t%d/%d\t%s\t%s\t%s\t%s\n", t.TransactionalID, t.ProducerID, t.ProducerEpoch, t.State,
				ms(t.AgeMillis), ms(t.TimeoutMillis), strings.Join(t.HoldsBack, " "))
		}
	}
	return tw.Flush()
}

func renderTopicSummary(tw io.Writer, parts []admin.Partition) {
	if len(parts) == 0 {
		return
	}
	fmt.Fprintf(tw, "\nTOPICS\nTOPIC\tPARTITIONS\tRF\tMIN ISR\tUNDER-REPLICATED\tOFFLINE\tLSO < HWM\n")
	var topics []string
	for _, p := range parts {
		if !slices.Contains(topics, p.Topic) {
			topics = append(topics, p.Topic)
		}
	}
	var gaps []admin.Partition
	for _, t := range topics {
		var n, under, offline, gap int
		var rf, minISR int
		for _, p := range parts {
			if p.Topic != t {
				continue
			}
			n, rf, minISR = n+1, len(p.Replicas), p.MinISR
			switch {
			case p.Leader < 0 || p.Error != "":
				offline++
			case len(p.ISR) < len(p.Replicas):
				under++
			}
			if p.Gap() > 0 {
				gap++
				gaps = append(gaps, p)
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", t, n, rf, minISR, under, offline, gap)
	}
	if len(gaps) == 0 {
		return
	}
	fmt.Fprintf(tw, "\nLAST STABLE OFFSET BELOW HIGH WATERMARK\nPARTITION\tLSO\tHWM\tHELD BY\tTXN START\tAGE\n")
	for _, p := range gaps {
		holder, start, age := "unknown", "", ""
		if h := p.HeldBy; h != nil {
			holder = fmt.Sprintf("producer %d/%d", h.ProducerID, h.ProducerEpoch)
			if h.TransactionalID != "" {
				holder = h.TransactionalID + " (" + holder + ")"
			}
			start, age = fmt.Sprint(h.StartOffset), ms(h.AgeMillis)
		}
		fmt.Fprintf(tw, "%s[%d]\t%d\t%d\t%s\t%s\t%s\n", p.Topic, p.Partition, p.LastStable, p.HighWatermark, holder, start, age)
	}
}

func renderGroups(tw io.Writer, groups []admin.Group) {
	for _, g := range groups {
		fmt.Fprintf(tw, "\nGROUP %s: %s, %d members, %d records waiting in %s\n", g.Name, g.State, len(g.Members), g.TotalLag, strings.Join(g.Inputs, ", "))
		if g.Error != "" {
			fmt.Fprintf(tw, "error: %s\n", g.Error)
		}
		if len(g.Lag) == 0 {
			continue
		}
		names := map[string]string{}
		for _, m := range g.Members {
			names[m.ID] = orElse(m.InstanceID, m.ClientID+"@"+m.Host)
		}
		fmt.Fprintln(tw, "PARTITION\tMEMBER\tCOMMITTED\tLSO\tHWM\tLAG\tPENDING")
		for _, l := range g.Lag {
			pending := "-"
			if l.Pending >= 0 {
				pending = fmt.Sprint(l.Pending)
			}
			fmt.Fprintf(tw, "%s[%d]\t%s\t%d\t%d\t%d\t%d\t%s\n", l.Topic, l.Partition, orElse(names[l.Member], "-"), l.Committed, l.LastStable, l.HighWatermark, l.Lag, pending)
		}
	}
}

// orElse returns a unless it is empty, else b.
func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func ms(v int64) string {
	if v < 0 {
		return "?"
	}
	return (time.Duration(v) * time.Millisecond).String()
}

// saslPrincipal is the principal Kafka gives a client of c: User:<name>
// with PLAIN and SCRAM; empty when the name is not known here (mTLS takes
// it from the certificate's subject and the broker's mapping rules,
// OAUTHBEARER from the token, AWS_MSK_IAM from the IAM role).
func saslPrincipal(c kafkaauth.Config) string {
	switch strings.ToUpper(strings.TrimSpace(c.SASL.Mechanism)) {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASL.Username != "" {
			return "User:" + c.SASL.Username
		}
	}
	return ""
}

// renderACLs prints, for each role, the ACLs it needs for p as a table
// and as kafka-acls.sh commands that grant them to principal. With
// groups, the instance and reset roles are those of these stages only.
func renderACLs(w io.Writer, p admin.Pipeline, groups []string, principal string) error {
	instances := p
	if len(groups) > 0 {
		instances.Stages = slices.DeleteFunc(slices.Clone(p.Stages), func(s admin.Stage) bool { return !slices.Contains(groups, s.Group) })
	}
	if principal == "" {
		principal = "User:exactly"
		fmt.Fprintf(w, "# principal unknown (--acls-principal, or a PLAIN or SCRAM --sasl-username): %s below\n", principal)
	}
	fmt.Fprintln(w, "# Instances need CREATE on their changelogs, outputs and dead-letter topics only when they create them")
	fmt.Fprintln(w, "# (run --create-topics, the default, creates missing ones): create the topics first with `topics create`.")
	fmt.Fprintln(w, "# Brokers before Kafka 2.8 also need IDEMPOTENT_WRITE on the cluster for reset.")
	for _, role := range admin.Roles {
		of := p
		if role == admin.RoleInstance || role == admin.RoleReset {
			of = instances
		}
		acls, err := admin.RequiredACLs(of, role, admin.ACLOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n# role %s: %d ACLs\n", role, len(acls))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "# RESOURCE\tNAME\tPATTERN\tOPERATION\tWHY")
		for _, a := range acls {
			fmt.Fprintf(tw, "# %s\t%s\t%s\t%s\t%s\n", a.Resource, a.Name, a.Pattern, a.Operation, a.Why)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, a := range acls {
			fmt.Fprintln(w, a.Command(principal))
		}
	}
	return nil
}
