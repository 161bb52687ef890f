"""What a push sets off: the hooks (pre-receive checks, post-receive deploy) and the deploy itself
(switch the release, write the Makefiles and crontab, redraw the site, start on-push runs).

Above run/, schedule/ and site/, which it drives, and git/, which it asks for commits and
releases; git/ itself stays below them (run/ and site/ read releases through it).
"""
