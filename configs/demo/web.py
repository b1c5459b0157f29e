# The demo's web app: python3's http.server (a thread per request) serving
# a directory on 127.0.0.1:PORT, with a listen backlog of 128 instead of
# http.server's 5. With 5, a burst of connections (64 clients while the
# other instance restarts) overflows the backlog: the kernel drops the
# connection attempts and each waits a second or more to try again.
# Usage: python3 web.py PORT DIRECTORY. SIGINT stops it (exit 0).
import functools
import http.server
import sys


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 128


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=directory)
    with Server(("127.0.0.1", port), handler) as srv:
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
