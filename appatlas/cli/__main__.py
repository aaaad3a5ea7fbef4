from appatlas.cli import main

main()
