"""Work off the request path, run by ``shoprec worker``: background jobs (:mod:`.jobs`) and the
continuous-training schedule (:mod:`.training`). Wired to Redis through ``shoprec.adapters``."""
