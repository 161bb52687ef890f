"""Git side: hooks (pre/post-receive), deploys, notes; every git call goes through gitcmd.py."""
