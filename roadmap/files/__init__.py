"""Everything on disk that every layer shares: atomic writes and strict reads (`atomic`), the run
folder's layout with its tolerant readers (`layout`, the one owner of every file name under
results/<run>/), and the records result.json holds (`records`). No torch, and nothing above the spec."""
