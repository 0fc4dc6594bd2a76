// Firmware entry for boards/feedline_c3.board.json: the import embeds the board's pin configuration in the
// bytecode (the runtime applies it at start), and the program is the same as the simulator's.
// Build: npm run build. Flash + deploy: see README "Flash a real board".
import "@dsboard/feedline_c3"
import "../main"
