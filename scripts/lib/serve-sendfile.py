# A static file server for benchmarks: http.server (HEAD, Range-less GET),
# but the body goes out with sendfile(2). Prints "port N" once listening.
import http.server
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def copyfile(self, source, outputfile):
        outputfile.flush()
        self.connection.sendfile(source)

    def log_message(self, *args):
        pass


directory = sys.argv[1]
server = http.server.ThreadingHTTPServer(
    ("127.0.0.1", 0), lambda *a, **k: Handler(*a, directory=directory, **k))
print("port", server.server_address[1], flush=True)
server.serve_forever()
