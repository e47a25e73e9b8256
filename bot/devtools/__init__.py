"""Tools for running salesbot without a tenant: the WeCom wire builder and a fake WeCom API server.

Used by `salesbot demo` and by the tests; never by the production path.
"""
