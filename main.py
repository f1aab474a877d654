from gradcam.cli import command

command()
