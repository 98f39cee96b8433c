#!/usr/bin/env bash
# Deploy Hydra DocIntel to a Prefect server: work pools, global concurrency limits, every deployment in prefect.yaml.
# Idempotent: run it again after changing prefect.yaml or the code's flow signatures.
#
#   PREFECT_API_URL=http://prefect-host:4200/api DOCINTEL_DB_URI=/mnt/shared/docintel/lancedb scripts/deploy.sh
#
# Settings (environment, with defaults):
#   PREFECT_API_URL            the server (required; PREFECT_API_AUTH_STRING too when the server has auth on)
#   DOCINTEL_DB_URI            the one LanceDB database every node writes into   [$REPO/data/lancedb]
#   DOCINTEL_REPO_DIR          this checkout's path on every node                  [this repository]
#   DOCINTEL_INBOX             inbox folder or glob of the scheduled batch         [$REPO/data/inbox]
#   DOCINTEL_INGEST_CRON       when the batch runs                                 ["0 2 * * *": nightly at 02:00]
#   DOCINTEL_INGEST_TIMEZONE   the cron's time zone                                [UTC]
#   DOCINTEL_NODES             nodes (one process pool "<node>-gpu0" each)         ["spark-1 spark-2"]
#   DOCINTEL_GCL_OCR / _EMBED / _LLM   concurrent requests per model server and node [8 / 16 / 8]
#   PREFECT                    the prefect command                                 [$REPO/.venv/bin/prefect]
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
PREFECT="${PREFECT:-$REPO/.venv/bin/prefect}"
[ -x "$PREFECT" ] || PREFECT="$(command -v prefect)"
PYTHON="$(dirname "$PREFECT")/python"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"

export DOCINTEL_DB_URI="${DOCINTEL_DB_URI:-$REPO/data/lancedb}"
export DOCINTEL_REPO_DIR="${DOCINTEL_REPO_DIR:-$REPO}"
export DOCINTEL_INBOX="${DOCINTEL_INBOX:-$REPO/data/inbox}"
export DOCINTEL_INGEST_CRON="${DOCINTEL_INGEST_CRON:-0 2 * * *}"
export DOCINTEL_INGEST_TIMEZONE="${DOCINTEL_INGEST_TIMEZONE:-UTC}"
export PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
NODES="${DOCINTEL_NODES:-spark-1 spark-2}"
GCL_OCR="${DOCINTEL_GCL_OCR:-8}" GCL_EMBED="${DOCINTEL_GCL_EMBED:-16}" GCL_LLM="${DOCINTEL_GCL_LLM:-8}"

if [ -z "${PREFECT_API_URL:-}" ]; then
    PREFECT_API_URL="$("$PREFECT" config view --show-defaults 2>/dev/null | sed -n "s/^PREFECT_API_URL='\(.*\)'.*/\1/p")"
    [ -n "$PREFECT_API_URL" ] || { echo "deploy: set PREFECT_API_URL (e.g. http://prefect-host:4200/api)" >&2; exit 2; }
fi
echo "deploy: server $PREFECT_API_URL, database $DOCINTEL_DB_URI, code $DOCINTEL_REPO_DIR"

# 1. Work pools (one process pool per node GPU) and 2. global concurrency limits (one per model service per node:
#    requests in flight to that node's vLLM server), in one Python process: the same as
#    `prefect work-pool create NODE-gpu0 --type process` and `prefect gcl create vllm-embed-NODE --limit N`, but idempotent
#    and without paying the CLI's start-up for each of them.
NODES="$NODES" GCL_OCR="$GCL_OCR" GCL_EMBED="$GCL_EMBED" GCL_LLM="$GCL_LLM" "$PYTHON" - <<'PY'
import os
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.workers.process import ProcessWorker

with get_client(sync_client=True) as client:
    for node in os.environ["NODES"].split():
        pool = f"{node}-gpu0"
        try:
            client.read_work_pool(pool)
            print(f"pool {pool}: exists")
        except ObjectNotFound:
            template = ProcessWorker.get_default_base_job_template()
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process", base_job_template=template))
                print(f"pool {pool}: created (type process)")
            except ObjectAlreadyExists:  # a worker started meanwhile created it
                print(f"pool {pool}: exists")
        for service, variable in (("ocr", "GCL_OCR"), ("embed", "GCL_EMBED"), ("llm", "GCL_LLM")):
            name, limit = f"vllm-{service}-{node}", int(os.environ[variable])
            client.upsert_global_concurrency_limit_by_name(name, limit)
            print(f"limit {name}: {limit}")
PY

# 3. Deployments. An entrypoint that does not exist (yet) is skipped with a warning instead of failing the rest.
mapfile -t names < <("$PYTHON" - <<'PY'
import os, re, yaml
config = yaml.safe_load(open("prefect.yaml"))
for deployment in config["deployments"]:
    path, function = deployment["entrypoint"].split(":")
    source = open(path).read() if os.path.exists(path) else ""
    at = source.find(f"def {function}(")
    decorator = source[source.rfind("@flow", 0, at) : at] if at >= 0 and "@flow" in source[:at] else ""
    name = re.search(r'name\s*=\s*"([^"]+)"', decorator)
    print(f"{name.group(1)}/{deployment['name']}" if name else f"MISSING {deployment['entrypoint']}/{deployment['name']}")
PY
)
args=() missing=0
for name in "${names[@]}"; do
    if [[ $name == MISSING* ]]; then
        echo "deploy: WARNING: skipping ${name#MISSING } (entrypoint not found)" >&2
        missing=1
    else
        args+=(--name "$name")
    fi
done
if [ "$missing" = 0 ]; then
    "$PREFECT" --no-prompt deploy --all
else
    "$PREFECT" --no-prompt deploy "${args[@]}"
fi

# 4. How to start the workers.
cat <<EOF

Deployed. Start one worker per node (see deployments/systemd/prefect-worker@.service for the production unit):
EOF
for node in $NODES; do
    cat <<EOF
  on $node:  PREFECT_API_URL=$PREFECT_API_URL [PREFECT_API_AUTH_STRING=...] \\
            $PREFECT worker start --pool $node-gpu0 --type process
EOF
done
cat <<EOF
The scheduled batch: ingest-batch/scheduled ("$DOCINTEL_INGEST_CRON", $DOCINTEL_INGEST_TIMEZONE) over $DOCINTEL_INBOX.
Run it now:  $PREFECT deployment run ingest-batch/scheduled [--param inbox=/path/to/inbox]
EOF
