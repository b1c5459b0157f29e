#!/bin/sh
# Demo worker: asks the demo web app for its page every 2 seconds.
trap 'echo "worker: got SIGTERM, bye"; exit 0' TERM
n=0
while :; do
	n=$((n + 1))
	if python3 -c 'import urllib.request,sys; urllib.request.urlopen("http://127.0.0.1:8000/", timeout=2)' 2>/dev/null; then
		echo "worker: job $n done (web answered)"
	else
		echo "worker: job $n failed: web did not answer" >&2
	fi
	sleep 2 & wait $!
done
