"""The local console: a web page on 127.0.0.1 with the pipeline graph, training curves, endpoints and a predict view.

It is an app above the local runtime (``local_aws`` never imports it): it reads everything through the stack's own
AWS APIs and calls the REST API like any user, so it works against any target ``ops`` can reach.
"""
