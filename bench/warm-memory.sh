# Sourced by bench/backup.sh and bench/restore.sh once $work exists: warm_memory fills the machine's
# free memory with page cache before anything is timed, and sets warm_note (what was done, for the
# results file). BENCH_WARM=0 skips it (warm_note then says so).
#
# Why: this VM's balloon reports free pages to the hypervisor, which takes them back, and touching
# such a page again costs about 2 s of system CPU per GiB (reading 4 GiB into fresh memory: 8.9 s;
# into recycled page cache: 0.36 s). A restore writes 1.5 GB into the page cache, so on fresh memory
# it paid ~3 s more, a single writer (bsdtar) more than two (pgBackRest's processes), and the rounds
# after the first minutes, once memory had filled, ran on recycled pages instead. A host that has
# run for a while has its memory full of page cache: both tools are timed in that state. A sparse
# file as large as the free memory is read once (holes read as zero pages: no disk used) and kept
# until the end ($work/warm; the callers remove it); the tools reclaim its clean pages.
warm_note="page cache not filled first (BENCH_WARM=0): rounds may run on memory the hypervisor took back"
warm_memory() {
  ((${BENCH_WARM:-1})) || return 0
  echo "== filling the page cache"
  local free_kb before after
  free_kb=$(awk '/^MemFree:/ {print $2}' /proc/meminfo)
  before=$(date +%s.%N)
  truncate -s "${free_kb}K" "$work/warm"
  cat "$work/warm" >/dev/null
  after=$(date +%s.%N)
  warm_note="page cache filled first: $((free_kb / 1024)) MiB free read into it in $(echo "scale=1; ($after - $before) / 1" | bc) s, MemFree $(($(awk '/^MemFree:/ {print $2}' /proc/meminfo) / 1024)) MiB after"
  echo "   $warm_note"
}
