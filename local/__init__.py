"""The local stack: the API on 127.0.0.1 with embedded AWS (moto). Never deployed."""
