import { intakeHttpVsBare } from './.scratch-intake.js'
process.stdout.write(`${JSON.stringify(await intakeHttpVsBare())}\n`)
