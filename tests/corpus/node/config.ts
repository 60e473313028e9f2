export interface PartnerConfig {
  apiKey: string; ⟦N⟧
  secretArn: string; ⟦N⟧
}

export const partnerConfig: PartnerConfig = {
  apiKey: process.env.PARTNER_API_KEY ?? '', ⟦N⟧
  secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:partner-AbCdEf', ⟦N⟧
};

const GITLAB_TOKEN: string = 'glpat-g1tDvyKAgBwxSD9d_6y9'; ⟦S⟧
const SLACK_USER_TOKEN = "xoxp-207504949952-929605480346-2610582022368-c76300e91f0b8294c0ec9a0473e6e1a6"; ⟦S⟧
const passwordField = 'password'; ⟦N⟧
const csrfToken = document.querySelector('meta[name=csrf-token]')?.getAttribute('content'); ⟦N⟧
const nextToken = response.NextToken; ⟦N⟧
let accessToken = await getAccessToken(); ⟦N⟧
const encryptionKey = "XqfSK83fteH35AsmFnE11jJv079ok/Ymp3olzwErb+A="; ⟦S⟧
export const GITHUB_APP_TOKEN = "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"; ⟦S⟧
