package pipeline

// ExampleConfig is rowhook.example.yaml, what `rowhook init` prints (a
// test in cmd/rowhook keeps the two identical).
const ExampleConfig = `# yaml-language-server: $schema=docs/rowhook.schema.json
#
# rowhook's configuration for a Vtiger CRM database: ` + "`rowhook init`" + ` prints it.
# Every value marked CHANGE is a placeholder. Secrets are never written here:
# each is ${NAME:-placeholder} (the environment variable NAME) or
# ${file:/run/secrets/NAME} (a Docker/Kubernetes secret, or a systemd
# credential: ${file:${CREDENTIALS_DIRECTORY}/NAME}). As printed, ` + "`rowhook check --offline --config rowhook.example.yaml`" + ` accepts it.
# Reference: README.md (Configuration) and docs/.

# The binlog rowhook reads: the CRM's replica (docs/cdc.md lists the
# settings and grants it needs: binlog_format=ROW, binlog_row_image=FULL,
# binlog_row_metadata=FULL, REPLICATION SLAVE, REPLICATION CLIENT, SELECT).
source:
  dsn: rowhook:${ROWHOOK_SOURCE_PASSWORD:-change-me}@tcp(127.0.0.1:3306)/   # CHANGE host, user
  include: ["vtiger.*"]   # only the CRM's tables are decoded
  start: current          # without a checkpoint: current | earliest | gtid:SET | file:NAME:POS

# /healthz, /readyz, /metrics and the admin API. On a loopback address
# the admin API needs no token; on any other, admin.token.
http:
  listen: 127.0.0.1:9788

# Checkpoint, delivery queue, delivery log: keep it across restarts.
state:
  path: rowhook-state.db   # CHANGE: /var/lib/rowhook/rowhook-state.db in production

# Successful deliveries in the log (failures are always logged): one INFO
# line per webhook per interval with counts and latencies (summary), one
# per delivery (every), one in log.sample (sample), or none.
log:
  delivery_success: summary
  summary_interval: 60s

# The Vtiger preset body functions (NewOpportunity, ...): docs/rules.md.
vtiger:
  schema: vtiger   # CHANGE to the CRM's database name
  settle: 2s

rules:
  - name: new-opportunity
    table: vtiger.vtiger_potential
    "on": [insert]   # quoted: YAML 1.1 tools read a bare on as true
    when: row.amount > 1000 && row.sales_stage != "Closed Lost"
    event: NewOpportunity
    webhooks: [erp]
  - name: ticket-closed
    table: vtiger.vtiger_troubletickets
    "on": [update]
    when: changed("status") && row.status == "Closed"
    event: TicketUpdated
    webhooks: [erp]

webhooks:
  erp:
    url: https://erp.example.com/api/crm-events   # CHANGE
    method: POST
    auth:
      type: bearer
      token: ${ERP_API_TOKEN:-change-me}
    # whsec_ and at least 24 random bytes in base64:
    #   echo "whsec_$(head -c 32 /dev/urandom | base64)"
    signing:
      secret: ${ROWHOOK_SIGNING_SECRET:-whsec_Y2hhbmdlLW1lLWNoYW5nZS1tZS1jaGFuZ2UtbWUh}
    retry:
      max_attempts: 10
      initial_interval: 2s
      max_interval: 1h
`
