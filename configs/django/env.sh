# Defaults for configs/webserver.toml's variables; source it, then override
# what you need:  . configs/django/env.sh && bin/hostctl run -c configs/webserver.toml
# The ports differ from the services' usual ones so that a system memcached,
# rabbitmq or epmd on this machine is left alone.
export WEBSERVER_DIR="${WEBSERVER_DIR:-/tmp/hostctl-django}"
export WEBSERVER_HTTP_PORT="${WEBSERVER_HTTP_PORT:-8080}"
export WEBSERVER_MEMCACHED_PORT="${WEBSERVER_MEMCACHED_PORT:-11212}"
export WEBSERVER_AMQP_PORT="${WEBSERVER_AMQP_PORT:-5673}"
export WEBSERVER_DIST_PORT="${WEBSERVER_DIST_PORT:-25673}"
export WEBSERVER_EPMD_PORT="${WEBSERVER_EPMD_PORT:-4370}"
