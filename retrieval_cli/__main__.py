from retrieval_cli.cli import main

main()
