from ktl_lsp.cli import main

raise SystemExit(main())
