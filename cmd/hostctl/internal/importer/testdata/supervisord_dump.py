# Prints the processes Python supervisor 4.2 (Debian's supervisor package)
# reads from a supervisord.conf, as JSON: the reference that
# TestAgainstSupervisord compares hostctl import with.
import json, os, sys
from supervisor.options import ServerOptions
from supervisor.datatypes import Automatic, RestartUnconditionally, RestartWhenExitUnexpected
import shlex
o = ServerOptions()
o.configfile = sys.argv[1]
o.here = os.path.abspath(os.path.dirname(sys.argv[1]))
sec = o.read_config(sys.argv[1])
out = []
def lf(v):
    if v is Automatic: return "AUTO"
    if v is None: return "NONE"
    return v
for g in sec.process_group_configs:
    for p in g.process_configs:
        ar = {RestartUnconditionally: "true", RestartWhenExitUnexpected: "unexpected", False: "false"}[p.autorestart]
        out.append(dict(kind=type(g).__name__, group=g.name, name=p.name, argv=shlex.split(p.command), directory=p.directory, umask=p.umask,
            priority=p.priority, autostart=p.autostart, autorestart=ar, exitcodes=p.exitcodes, startsecs=p.startsecs,
            startretries=p.startretries, stopsignal=p.stopsignal, stopwaitsecs=p.stopwaitsecs, uid=p.uid,
            redirect_stderr=p.redirect_stderr, environment=p.environment,
            stdout_logfile=lf(p.stdout_logfile), stderr_logfile=lf(p.stderr_logfile),
            stdout_logfile_maxbytes=p.stdout_logfile_maxbytes, stdout_logfile_backups=p.stdout_logfile_backups))
print(json.dumps(out, indent=1))
