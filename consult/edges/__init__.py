"""What both edges (http/ and signaling/) share, so that neither imports the other: the client's
address behind proxies, the session cookie's name, a payload checked against its model."""
