from bench.harness import main

if __name__ == "__main__":  # not again in a forkserver child, which imports the main module by name
    main()
