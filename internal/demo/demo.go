// Package demo is rowhook demo: rowhook end to end on a private MariaDB
// pair, a Vtiger schema and a local receiver.
package demo

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rowhook/rowhook/internal/mariadb"
	"github.com/rowhook/rowhook/internal/pipeline"
	"github.com/rowhook/rowhook/internal/vtiger"
)

// demoConfig is the example configuration the demo runs with; %d/%s are the
// replica port, receiver URL, signing secret and primary port.
const demoConfig = `# rowhook demo configuration (written by 'rowhook demo')
source:
  dsn: mysql://root@127.0.0.1:%d/        # the replica: rowhook reads its binlog
  include: ['vtiger.*']
  heartbeat: 1s
http:
  listen: 127.0.0.1:0
state:
  path: state.db                          # SQLite: checkpoint, outbox, delivery log
admin:
  allow_redeliver: true
vtiger:
  schema: vtiger
  settle: 1s                              # Vtiger writes a record in ~25 autocommit statements
rules:
  - name: new-opportunity
    table: vtiger.vtiger_potential
    on: [insert]
    when: 'row.amount > 1000 && row.sales_stage != "Closed Lost"'
    event: NewOpportunity                 # Vtiger preset body: the whole record
    webhooks: [erp]
    writeback:                            # store the ERP's id on the opportunity
      table: vtiger.vtiger_potentialscf
      key: { potentialid: 'row.potentialid' }
      set: { cf_856: 'response.json.id' }
webhooks:
  erp:
    url: '%s/api/deals/{{ row.potentialid }}'
    method: POST
    content_type: json
    headers: { X-Source: crm }
    auth: { type: bearer, token: '${ROWHOOK_DEMO_ERP_TOKEN}' }
    signing: { secret: '%s' }             # Standard Webhooks signatures
    retry: { max_attempts: 10, initial_interval: 1s, max_interval: 1m }
writeback:
  dsn: mysql://root@127.0.0.1:%d/vtiger   # the primary
`

// Options are the demo's settings.
type Options struct {
	// Out receives the walkthrough; Log rowhook's logs (nil: none).
	Out, Log io.Writer
	// Keep keeps everything running after the demo until ctx ends.
	Keep bool
	// Version is rowhook's version.
	Version string
}

// Run runs the demo: a private MariaDB pair with Vtiger's schema, a local
// receiver and rowhook, one opportunity created the way Vtiger does, and
// what came of it.
func Run(ctx context.Context, o Options) error {
	out := o.Out
	step := func(format string, a ...any) { fmt.Fprintf(out, "\n==> "+format+"\n", a...) }

	step("Checking for MariaDB")
	if err := ensureMariaDB(ctx, out); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	bin, _ := mariadb.Binary()
	fmt.Fprintf(out, "    using %s\n", bin)

	step("Starting a private MariaDB primary (the CRM's database) and a replica (what rowhook reads)")
	pair, err := mariadb.StartPair(mariadb.Options{})
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer pair.Stop()
	fmt.Fprintf(out, "    primary 127.0.0.1:%d, replica 127.0.0.1:%d (ROW binlog, FULL row metadata, log_slave_updates, GTID)\n", pair.Primary.Port, pair.Replica.Port)

	step("Loading the Vtiger CRM 8.3 schema on the primary")
	if err := vtiger.Load(ctx, pair.Primary.DB(), "vtiger"); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = pair.WaitSync(sctx)
	cancel()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	fmt.Fprintln(out, "    vtiger_crmentity, vtiger_potential, vtiger_potentialscf, vtiger_account, … replicated to the replica")

	secret := "whsec_" + RandomBase64(24)
	recv, err := StartReceiver("127.0.0.1:0", secret)
	if err != nil {
		return fmt.Errorf("demo: receiver: %w", err)
	}
	defer recv.Close()
	step("Starting a local receiver standing in for the ERP at %s", recv.URL())

	dir, err := os.MkdirTemp("", "rowhook-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfgText := fmt.Sprintf(demoConfig, pair.Replica.Port, recv.URL(), secret, pair.Primary.Port)
	cfgPath := filepath.Join(dir, "rowhook.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfgText), 0o600); err != nil {
		return err
	}
	os.Setenv("ROWHOOK_DEMO_ERP_TOKEN", "demo-"+RandomBase64(12))
	step("Starting rowhook with %s", cfgPath)
	fmt.Fprintln(out, indent(strings.ReplaceAll(cfgText, secret, "whsec_…"), "    "))
	cfg, _, err := pipeline.Load(ctx, cfgPath)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	logW := o.Log
	if logW == nil {
		logW = io.Discard
	}
	logger := slog.New(slog.NewTextHandler(logW, &slog.HandlerOptions{ReplaceAttr: pipeline.DurationSeconds}))
	pctx, stopPipeline := context.WithCancel(ctx)
	defer stopPipeline()
	p, err := pipeline.Open(pctx, cfg, pipeline.Options{Dir: dir, Logger: logger, Version: o.Version})
	if err == nil {
		p.Start(pctx)
	}
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	base := "http://" + p.Addr()
	if err := WaitHTTP(ctx, base+"/readyz", 30*time.Second); err != nil {
		return fmt.Errorf("demo: rowhook not ready: %w", err)
	}
	fmt.Fprintf(out, "    ready: %s/readyz, metrics at %s/metrics, admin API at %s/deliveries\n", base, base, base)

	step("Creating an account, then an opportunity for it on the primary exactly as Vtiger does (25 statements, each its own transaction)")
	conn, err := vtiger.Session(ctx, pair.Primary.DB(), "vtiger")
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer conn.Close()
	if err := vtiger.Exec(ctx, conn, vtiger.SeedAccount); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if err := vtiger.Exec(ctx, conn, vtiger.CreatePotential); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	var crmid int
	if err := conn.QueryRowContext(ctx, "SELECT @crmid").Scan(&crmid); err != nil {
		return err
	}
	fmt.Fprintf(out, "    opportunity %d \"Acme - 500 seats\" for account \"Acme Corp\", amount 25000, stage Prospecting\n", crmid)

	step("Waiting for the delivery (rowhook settles the record's rows for 1s of binlog time first)")
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	reqs, err := recv.wait(wctx, 1)
	cancel()
	if err != nil {
		return fmt.Errorf("demo: no delivery within 60s: %w", err)
	}
	r := reqs[0]
	fmt.Fprintf(out, "    %s %s\n", r.Method, r.Path)
	for _, h := range []string{"Content-Type", "Authorization", "X-Source", "Webhook-Id", "Webhook-Timestamp", "Webhook-Signature"} {
		v := r.Header.Get(h)
		if h == "Authorization" && v != "" {
			v = "Bearer …"
		}
		if v != "" {
			fmt.Fprintf(out, "    %s: %s\n", h, v)
		}
	}
	fmt.Fprintf(out, "    signature: %s (checked with the standard-webhooks library)\n", r.Signature)
	var pretty strings.Builder
	enc := json.NewEncoder(&pretty)
	enc.SetIndent("    ", "  ")
	var body any
	if json.Unmarshal(r.Body, &body) == nil {
		enc.Encode(body)
		fmt.Fprintf(out, "    body:\n    %s", pretty.String())
	}
	fmt.Fprintf(out, "    the receiver answered 201 {\"id\": %q}\n", r.ReplyID)

	step("Waiting for the ERP's id to be written back into the opportunity's custom field cf_856 on the primary")
	var cf string
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := pair.Primary.DB().QueryRowContext(ctx, "SELECT cf_856 FROM vtiger.vtiger_potentialscf WHERE potentialid = ?", crmid).Scan(&cf)
		if err == nil && cf == r.ReplyID {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: cf_856 is %q after 30s, want %q", cf, r.ReplyID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Fprintf(out, "    primary: vtiger_potentialscf.cf_856 = %q (one tagged transaction: /* rowhook writeback … */)\n", cf)
	sctx, cancel = context.WithTimeout(ctx, 20*time.Second)
	err = pair.WaitSync(sctx)
	cancel()
	if err == nil {
		pair.Replica.DB().QueryRowContext(ctx, "SELECT cf_856 FROM vtiger.vtiger_potentialscf WHERE potentialid = ?", crmid).Scan(&cf)
		fmt.Fprintf(out, "    replica: cf_856 = %q; rowhook saw its own write come back and did not fire again\n", cf)
	}
	time.Sleep(2 * time.Second)
	fmt.Fprintf(out, "    deliveries received by the ERP: %d\n", len(recv.requests()))

	step("The delivery log (GET %s/deliveries)", base)
	if b, err := GetBody(ctx, base+"/deliveries"); err == nil {
		fmt.Fprintln(out, indent(summariseDeliveries(b), "    "))
	} else {
		fmt.Fprintf(out, "    %v\n", err)
	}

	step("Metrics (GET %s/metrics, rowhook_* samples)", base)
	if b, err := GetBody(ctx, base+"/metrics"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(b)))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "rowhook_") && !strings.Contains(line, "_bucket{") {
				fmt.Fprintf(out, "    %s\n", line)
			}
		}
	}

	if o.Keep {
		step("Still running. Try, in another terminal:")
		fmt.Fprintf(out, "    go run ./cmd/rowhook tail --source mysql://root@127.0.0.1:%d/ --include 'vtiger.*'\n", pair.Replica.Port)
		fmt.Fprintf(out, "    curl %s/deliveries   curl %s/metrics\n", base, base)
		fmt.Fprintf(out, "    mariadb -h127.0.0.1 -P%d -uroot vtiger   (the primary: change a record and watch)\n", pair.Primary.Port)
		fmt.Fprintln(out, "    Ctrl-C stops everything and removes the temporary servers.")
		<-ctx.Done()
	}
	step("Stopping rowhook (reading stops, deliveries drain, checkpoint flushed) and the private servers")
	stopPipeline()
	if err := p.Wait(); err != nil {
		return fmt.Errorf("demo: rowhook: %w", err)
	}
	fmt.Fprintln(out, "    done.")
	return nil
}

// RandomBase64 is n random bytes in base64.
func RandomBase64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

// WaitHTTP waits until url answers 200, at most timeout.
func WaitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s answered %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// GetBody is url's body when it answers 200.
func GetBody(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %s: %s", url, resp.Status, b)
	}
	return b, err
}

// summariseDeliveries renders the admin API's delivery list as one line per
// delivery; unknown shapes are printed as they are.
func summariseDeliveries(b []byte) string {
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil {
		var wrapped struct {
			Deliveries []map[string]any `json:"deliveries"`
		}
		if err := json.Unmarshal(b, &wrapped); err != nil || wrapped.Deliveries == nil {
			return string(b)
		}
		list = wrapped.Deliveries
	}
	var sb strings.Builder
	for _, d := range list {
		fmt.Fprintf(&sb, "%v  webhook=%v  event=%v  status=%v  attempts=%v  http=%v  writeback=%v  %v\n",
			d["id"], d["webhook"], d["event"], d["status"], d["attempts"], d["last_status"], d["writeback"], d["url"])
	}
	return sb.String()
}
