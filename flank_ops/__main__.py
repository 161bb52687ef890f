from flank_ops.main import main

raise SystemExit(main())
