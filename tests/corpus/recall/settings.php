<?php
$mailgunSigningKey .= "a653ba6874c946418df487603467bdc4-7344ef70-a86ca06b"; ⟦S⟧
$apiToken .= "oIfxfXVBFjvs7VtSMlG7YyxP8noi"; ⟦S⟧
$slackToken = "xoxp-72158948165-RANDOMSTRINGHERE"; ⟦N⟧
