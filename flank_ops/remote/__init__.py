"""Working from the laptop: the VM's flank, reached over ssh (see ssh.py)."""
