// itune: the InstructTune command line.
return InstructTune.Cli.CliApp.Run(args);
