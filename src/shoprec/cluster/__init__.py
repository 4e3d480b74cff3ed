"""shoprec as replicas of one service: the Ray Serve application (:mod:`.ray_serve`, the one
module that imports ray) and the loopback check every test and benchmark of it runs
(:mod:`.loopback`)."""
