# Sourced by bench/backup.sh and bench/restore.sh after `set -euo pipefail` (not run on its own):
# what both need before they start — their arguments, the stack, the dataset script, the tools,
# a Node that runs the TypeScript, and the stack's own Temporal address.
#
#   . bench/setup.sh "$@"    from the checkout's root
#
# Expects here (the checkout, also the current folder). Sets: scale (pgbench scale, default 60), keep (1 with --keep), state, db,
# stack_plan, secrets, dataset; exports PATH and TEMPORAL_ADDRESS. Defines what both time with: now,
# load, secs, and in_alternating_order (which tool goes first in a round).
scale=60
keep=0
for a in "$@"; do
  case $a in
    --keep) keep=1 ;;
    *) scale=$a ;;
  esac
done

state=${LIFEBOAT_STATE:?set LIFEBOAT_STATE to the stack folder (lifeboat stack up)}
db=bench
stack_plan=$state/lifeboat.yaml
secrets=$state/secrets.env
dataset=${BENCH_DATASET:-$here/../shared/bench/dataset.sh}
[[ -f $dataset ]] || dataset=/work/shared/bench/dataset.sh
for f in "$stack_plan" "$secrets" "$dataset"; do [[ -f $f ]] || { echo "missing $f" >&2; exit 2; }; done
for b in pgbench psql pgbackrest zstd jq bc runuser; do
  command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }
done

# Node >= 22.19 for the CLI and the helper (the stack's own Node when the machine's is older).
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a==22&&b>=19)?0:1)' 2>/dev/null; then
  for n in "$here/.lifeboat/node/bin" "$state/node/bin"; do [[ -x $n/node ]] && PATH=$n:$PATH && break; done
fi
export PATH
# The CLI and the workers talk to TEMPORAL_ADDRESS, else localhost:7233: without this line a
# stack with a port offset would have its benchmark run on another stack's Temporal server.
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-$(node --disable-warning=ExperimentalWarning -e "import('./src/stack/layout.ts').then((m) => console.log(m.layoutFromEnv().temporal.address))")}

now() { date +%s.%N; }
load() { uptime | sed 's/.*load average: //'; }
# Seconds from $1 to $2 (two `now`s), to the hundredth.
secs() { echo "scale=2; ($2 - $1) / 1" | bc; }

# Runs round $1's two timed commands, Lifeboat's ($2) and pgBackRest's ($3), each given the round,
# Lifeboat first in odd rounds and pgBackRest first in even ones, and sets `order` to who went
# first: whichever ran just before the other changed how fast the other ran (the page cache).
in_alternating_order() {
  local round=$1 lifeboat=$2 pgbackrest=$3
  if ((round % 2)); then
    order=Lifeboat
    "$lifeboat" "$round"
    "$pgbackrest" "$round"
  else
    order=pgBackRest
    "$pgbackrest" "$round"
    "$lifeboat" "$round"
  fi
}
